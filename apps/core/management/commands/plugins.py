from django.conf import settings
from django.core.management.base import BaseCommand

from apps.core.plugins import catalog


class Command(BaseCommand):
    help = "List installed plugins: status, version, hooks, what they provide, and load errors."

    def handle(self, *args, **options):
        types = catalog.data_ingestion_types()
        views = catalog.visualization_types()
        plugins = settings.PLUGINS.plugins.values()
        if not plugins:
            self.stdout.write(
                "No plugins installed (entry point groups digits.plugins, digits.plugins.view)."
            )
        for info in plugins:
            style = {"loaded": self.style.SUCCESS, "failed": self.style.ERROR}.get(
                info.status, self.style.WARNING
            )
            version = f" {info.version}" if info.version else ""
            self.stdout.write(
                style(f"{info.name}{version} [{info.status}]") + f"  {info.entry_point}"
            )
            if info.distribution:
                self.stdout.write(f"  package: {info.distribution}")
            if info.django_app:
                self.stdout.write(f"  django app: {info.django_app}")
            if info.hooks:
                self.stdout.write(f"  hooks: {', '.join(info.hooks)}")
            provided = [
                f"{t} ({cls.get_title()})"
                for t, cls in types.items()
                if cls.plugin_name == info.name
            ]
            if provided:
                self.stdout.write(f"  dataset types: {', '.join(provided)}")
            shown = [
                f"{v} ({c.get_title()})" for v, c in views.items() if c.plugin_name == info.name
            ]
            if shown:
                self.stdout.write(f"  views: {', '.join(shown)}")
            if info.error:
                # pluggy's messages span lines: indent them so they stay under their plugin.
                self.stdout.write("  error: " + info.error.replace("\n", "\n    "))
