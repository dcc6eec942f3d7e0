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

_SCENE = """
query FindScenes($filter: FindFilterType, $scene_filter: SceneFilterType, $ids: [ID!]) {
  findScenes(filter: $filter, scene_filter: $scene_filter, ids: $ids) {
    count
    scenes {
      id
      title
      details
      tags { id }
      performers { id }
      files { path duration FINGERPRINTS }
      paths { stream }
    }
  }
}
"""

_IMAGE = """
query FindImages($filter: FindFilterType, $image_filter: ImageFilterType, $ids: [ID!]) {
  findImages(filter: $filter, image_filter: $image_filter, ids: $ids) {
    count
    images {
      id
      title
      details
      tags { id }
      performers { id }
      visual_files {
        __typename
        ... on BaseFile { path zip_file { path } FINGERPRINTS }
        ... on VideoFile { duration }
      }
      paths { image }
    }
  }
}
"""

# A gallery's own fields; its member images are read with FIND_IMAGES filtered by gallery, a
# page of one at each sampled position, so a 10,000-image set costs as few reads as a 6-image one.
FIND_GALLERIES = """
query FindGalleries($filter: FindFilterType, $gallery_filter: GalleryFilterType, $ids: [ID!]) {
  findGalleries(filter: $filter, gallery_filter: $gallery_filter, ids: $ids) {
    count
    galleries {
      id
      title
      details
      tags { id }
      performers { id }
      image_count
      folder { path }
      files { path }
    }
  }
}
"""

# With content fingerprints (the cache key) first; without them for a server that cannot give them.
FIND_SCENES = _SCENE.replace("FINGERPRINTS", "fingerprints { type value }")
FIND_SCENES_PLAIN = _SCENE.replace("FindScenes(", "FindScenesPlain(").replace(" FINGERPRINTS", "")
FIND_IMAGES = _IMAGE.replace("FINGERPRINTS", "fingerprints { type value }")
FIND_IMAGES_PLAIN = _IMAGE.replace("FindImages(", "FindImagesPlain(").replace(" FINGERPRINTS", "")

# What undo and re-apply need to know about items now: their tags (and a scene's markers).
SCENE_TAGS = """
query SceneTags($ids: [ID!], $filter: FindFilterType) {
  findScenes(ids: $ids, filter: $filter) {
    scenes { id details tags { id } performers { id } scene_markers { id } }
  }
}
"""

IMAGE_TAGS = """
query ImageTags($ids: [ID!], $filter: FindFilterType) {
  findImages(ids: $ids, filter: $filter) {
    images { id details tags { id } performers { id } }
  }
}
"""

GALLERY_TAGS = """
query GalleryTags($ids: [ID!], $filter: FindFilterType) {
  findGalleries(ids: $ids, filter: $filter) {
    galleries { id details tags { id } performers { id } }
  }
}
"""

TAG_USAGE = """
query TagUsage($ids: [ID!], $filter: FindFilterType) {
  findTags(ids: $ids, filter: $filter) {
    tags {
      id
      scene_count
      image_count
      scene_marker_count
      gallery_count
      performer_count
      studio_count
      group_count
      child_count
    }
  }
}
"""

TAG_DESTROY = """
mutation TagDestroy($input: TagDestroyInput!) {
  tagDestroy(input: $input)
}
"""

SCENE_MARKERS_DESTROY = """
mutation SceneMarkersDestroy($ids: [ID!]!) {
  sceneMarkersDestroy(ids: $ids)
}
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

BULK_GALLERY_UPDATE = """
mutation BulkGalleryUpdate($input: BulkGalleryUpdateInput!) {
  bulkGalleryUpdate(input: $input) { id }
}
"""

_SCENE_MARKERS = """
query SceneMarkers($id: ID) {
  findScene(id: $id) {
    id
    tags { id }
    scene_markers { id seconds END primary_tag { id } }
  }
}
"""

# With end times for Stash 0.28 and newer; without them for an older Stash, which has no such field.
SCENE_MARKERS = _SCENE_MARKERS.replace("END", "end_seconds")
SCENE_MARKERS_PLAIN = _SCENE_MARKERS.replace("SceneMarkers(", "SceneMarkersPlain(").replace(" END", "")

SCENE_MARKER_CREATE = """
mutation SceneMarkerCreate($input: SceneMarkerCreateInput!) {
  sceneMarkerCreate(input: $input) { id }
}
"""

# The review page's items: title, picture and tags with names (the suggestions are the journal's).
REVIEW_SCENES = """
query ReviewScenes($ids: [ID!], $filter: FindFilterType) {
  findScenes(ids: $ids, filter: $filter) {
    scenes { id title files { path } paths { screenshot } tags { id name } performers { id name } }
  }
}
"""

REVIEW_IMAGES = """
query ReviewImages($ids: [ID!], $filter: FindFilterType) {
  findImages(ids: $ids, filter: $filter) {
    images {
      id
      title
      visual_files { ... on BaseFile { path } }
      paths { thumbnail }
      tags { id name }
      performers { id name }
    }
  }
}
"""

REVIEW_GALLERIES = """
query ReviewGalleries($ids: [ID!], $filter: FindFilterType) {
  findGalleries(ids: $ids, filter: $filter) {
    galleries {
      id
      title
      image_count
      folder { path }
      files { path }
      paths { cover }
      tags { id name }
      performers { id name }
    }
  }
}
"""

# An item update that adds and removes in one request: both fields run in order, in one mutation.
REVIEW_SCENE_UPDATE = """
mutation ReviewSceneUpdate($add: BulkSceneUpdateInput!, $remove: BulkSceneUpdateInput!) {
  add: bulkSceneUpdate(input: $add) { id }
  remove: bulkSceneUpdate(input: $remove) { id }
}
"""

REVIEW_IMAGE_UPDATE = """
mutation ReviewImageUpdate($add: BulkImageUpdateInput!, $remove: BulkImageUpdateInput!) {
  add: bulkImageUpdate(input: $add) { id }
  remove: bulkImageUpdate(input: $remove) { id }
}
"""

REVIEW_GALLERY_UPDATE = """
mutation ReviewGalleryUpdate($add: BulkGalleryUpdateInput!, $remove: BulkGalleryUpdateInput!) {
  add: bulkGalleryUpdate(input: $add) { id }
  remove: bulkGalleryUpdate(input: $remove) { id }
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

# Performers recognised by face (issue 21): every performer's image, and items with their performers.
FIND_PERFORMERS = """
query FindPerformers($filter: FindFilterType) {
  findPerformers(filter: $filter) {
    count
    performers { id name image_path }
  }
}
"""

SCENE_CAST = """
query SceneCast($filter: FindFilterType, $scene_filter: SceneFilterType) {
  findScenes(filter: $filter, scene_filter: $scene_filter) {
    count
    scenes { id performers { id } paths { screenshot } }
  }
}
"""

IMAGE_CAST = """
query ImageCast($filter: FindFilterType, $image_filter: ImageFilterType) {
  findImages(filter: $filter, image_filter: $image_filter) {
    count
    images { id performers { id } paths { image } }
  }
}
"""
