from django.core.management.base import BaseCommand

from apps.inference import service


class Command(BaseCommand):
    help = (
        "Run the inference server: keeps recently used models loaded in sandboxed model "
        "processes and answers classify requests (DIGITS_INFERENCE_URL says where)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--bind", default="", help="host:port to listen on (default: DIGITS_INFERENCE_URL)."
        )

    def handle(self, *args, bind, **options):
        from apps.inference.server import InferenceServer

        if bind:
            host, _, port = bind.rpartition(":")
            where = ((host or "0.0.0.0", int(port)), "AF_INET")  # noqa: S104  a pod's port
        else:
            where = service.address()
        server = InferenceServer(where)
        self.stdout.write(f"Inference server listening on {where[0]}")
        try:
            server.serve_forever()
        finally:
            server.stop()
