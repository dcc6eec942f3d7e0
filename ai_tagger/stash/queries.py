"""Every GraphQL document the plugin sends to Stash.

Kept in one module so that a conformance test can validate each of them against Stash's
real schema: Stash rejects a whole request over one unknown field. Each selects only what the
plugin uses; resolver-computed fields (tag usage counts) are asked for separately, so a server
that cannot compute them still serves the rest.
"""

VERSION = """
query Version {
  version { version }
}
"""

CONFIGURATION = """
query Configuration($include: [ID!]) {
  configuration {
    general { ffmpegPath ffprobePath }
    plugins(include: $include)
  }
}
"""

_TAG_FIELDS = """
fragment TagFields on Tag {
  id
  name
  aliases
  parents { id }
}
"""

FIND_TAGS = (
    """
query FindTags($filter: FindFilterType, $tag_filter: TagFilterType) {
  findTags(filter: $filter, tag_filter: $tag_filter) {
    count
    tags { ...TagFields }
  }
}
"""
    + _TAG_FIELDS
)

FIND_TAGS_WITH_USE = (
    """
query FindTagsWithUse($filter: FindFilterType) {
  findTags(filter: $filter) {
    count
    tags { ...TagFields scene_count image_count }
  }
}
"""
    + _TAG_FIELDS
)

TAG_CREATE = (
    """
mutation TagCreate($input: TagCreateInput!) {
  tagCreate(input: $input) { ...TagFields }
}
"""
    + _TAG_FIELDS
)

_FINGERPRINTS = "fingerprints { type value }"

FIND_SCENES = f"""
query FindScenes($filter: FindFilterType, $scene_filter: SceneFilterType, $ids: [ID!]) {{
  findScenes(filter: $filter, scene_filter: $scene_filter, ids: $ids) {{
    count
    scenes {{
      id
      title
      tags {{ id }}
      files {{
        path
        duration
        width
        height
        frame_rate
        {_FINGERPRINTS}
      }}
      paths {{ stream screenshot }}
    }}
  }}
}}
"""

FIND_IMAGES = f"""
query FindImages($filter: FindFilterType, $image_filter: ImageFilterType, $ids: [ID!]) {{
  findImages(filter: $filter, image_filter: $image_filter, ids: $ids) {{
    count
    images {{
      id
      title
      tags {{ id }}
      visual_files {{
        __typename
        ... on ImageFile {{
          path
          width
          height
          zip_file {{ path }}
          {_FINGERPRINTS}
        }}
        ... on VideoFile {{
          path
          width
          height
          duration
          zip_file {{ path }}
          {_FINGERPRINTS}
        }}
      }}
      paths {{ image thumbnail }}
    }}
  }}
}}
"""

BULK_SCENE_UPDATE = """
mutation BulkSceneUpdate($input: BulkSceneUpdateInput!) {
  bulkSceneUpdate(input: $input) { id }
}
"""

BULK_IMAGE_UPDATE = """
mutation BulkImageUpdate($input: BulkImageUpdateInput!) {
  bulkImageUpdate(input: $input) { id }
}
"""

JOB_QUEUE = """
query JobQueue {
  jobQueue { id status description }
}
"""

RUN_PLUGIN_TASK = """
mutation RunPluginTask($plugin_id: ID!, $task_name: String, $description: String, $args_map: Map) {
  runPluginTask(plugin_id: $plugin_id, task_name: $task_name, description: $description, args_map: $args_map)
}
"""

ALL = {
    name: value
    for name, value in dict(globals()).items()
    if name.isupper() and not name.startswith("_") and isinstance(value, str)
}
