import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Serve the platform (HTTP and websockets) with uvicorn. Without a broker configured "
        "it also runs the embedded job worker and reaper; without DIGITS_INFERENCE_URL, "
        "the embedded inference server."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-worker", action="store_true", help="Do not run the embedded worker."
        )

    def handle(self, *args, host, port, no_worker, **options):
        embedded = None
        if settings.DIGITS_EMBEDDED_WORKER and not no_worker:
            from apps.jobs.embedded import EmbeddedWorker

            embedded = EmbeddedWorker()
            embedded.start()
            self.stdout.write("Embedded worker and reaper started (no DIGITS_BROKER_URL set).")
        inference = self._start_inference()
        self.stdout.write(f"Serving on http://{host}:{port}/")
        server = uvicorn.Server(
            uvicorn.Config("digits_site.asgi:application", host=host, port=port, lifespan="off")
        )
        try:
            server.run()
        finally:
            if embedded is not None:
                embedded.stop()
            if inference is not None:
                inference.stop()

    def _start_inference(self):
        """The embedded inference server, unless DIGITS_INFERENCE_URL names another one."""
        if settings.DIGITS_INFERENCE_URL:
            return None
        from apps.inference.server import InferenceServer

        server = InferenceServer()
        server.start()
        self.stdout.write(f"Embedded inference server on {server.where[0]}.")
        return server
