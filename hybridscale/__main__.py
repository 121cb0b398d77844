import sys

from hybridscale.cli import main

sys.exit(main())
