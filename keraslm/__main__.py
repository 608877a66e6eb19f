import sys

from keraslm.cli import main

sys.exit(main())
