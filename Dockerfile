# AI Tagger's built-in local model (NudeNet 320n) as a sidecar for Stash in Docker, served over the
# plugin's `labels` contract (README: "Local model with Stash in Docker").
#   docker build -t ai-tagger-local .
#   docker run --rm -p 8765:8765 -e AI_TAGGER_SERVE_KEY=change-me ai-tagger-local
# A glibc image on purpose: onnxruntime and OpenCV publish no musl wheels, which is why Stash's
# Alpine image cannot run `provider: local` itself. The server needs only the standard library and
# requirements-local.txt (and requirements-faces.txt for face embeddings), so the plugin's own
# dependencies (requests, pydantic...) are not installed.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /app
COPY requirements-local.txt requirements-faces.txt ./
# Face embeddings (POST /faces) for plugins with faceServerUrl: dlib-bin and its CC0 models.
RUN python -m pip install -r requirements-local.txt -r requirements-faces.txt
COPY ai_tagger/ ai_tagger/

# Warm up at build time: load the model (it ships inside the nudenet wheel, nothing is downloaded)
# and run one picture through it, so a missing library fails the build, not the first request.
RUN python -m compileall -q ai_tagger && python -c "\
import cv2, numpy; \
from ai_tagger.analyze.local.detector import Detector; \
Detector.load().detect([cv2.imencode('.png', numpy.zeros((64, 64, 3), numpy.uint8))[1].tobytes()]); \
print('nudenet-320n loaded')"

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin ai-tagger
USER ai-tagger

EXPOSE 8765
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8765/health', timeout=4)"]
# The key comes from AI_TAGGER_SERVE_KEY (never put it on the command line: `ps` shows arguments).
# Without a key the server refuses to listen on 0.0.0.0 (it would serve anyone who reaches it).
# --workers defaults to the CPUs the container may use.
CMD ["python", "-m", "ai_tagger.serve", "--host", "0.0.0.0", "--port", "8765"]
