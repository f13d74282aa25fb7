import sys

from archbuilder.cli import main

sys.exit(main())
