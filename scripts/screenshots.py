"""Take the screenshots of docs/screenshots/ (desktop, phone, dark) from a live test
portal: runs tests/browser/test_screenshots.py with the test services and keeps its images.

    python scripts/screenshots.py            # into docs/screenshots/
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    env = {**os.environ, "DIGITS_SCREENSHOTS_DIR": str(ROOT / "docs" / "screenshots")}
    command = [
        sys.executable, str(ROOT / "scripts" / "with_test_services.py"), sys.executable, "-m",
        "pytest", "tests/browser/test_screenshots.py", "-q", "-p", "no:cacheprovider",
    ]  # fmt: skip
    sys.exit(subprocess.call(command, cwd=ROOT, env=env))
