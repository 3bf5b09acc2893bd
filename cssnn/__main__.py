import sys

from cssnn.cli import main

sys.exit(main())
