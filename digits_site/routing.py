from django.urls import path, re_path

from apps.core import websockets
from apps.jobs import consumers

websocket_urlpatterns = [
    path("ws/jobs/", consumers.JobListConsumer.as_asgi()),
    path("ws/jobs/<int:job_id>/", consumers.JobConsumer.as_asgi()),
    # Anything else (/ws/jobs/abc/, /ws/nope/) closes with 4404 instead of an exception.
    re_path(r"", websockets.not_found),
]
