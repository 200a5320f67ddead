import sys

from hirfast.cli import main

sys.exit(main())
