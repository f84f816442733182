import sys

from ccwatch.cli import main

sys.exit(main())
