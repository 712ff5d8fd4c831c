import sys

from registry.runtime.cli import main

sys.exit(main())
