import sys
import traceback

from .main import main

try:
    main()
except BaseException as exc:  # the kernel shows fd 2 of a dying executor in the cell
    if not isinstance(exc, SystemExit):
        traceback.print_exc(file=sys.__stderr__)
        sys.__stderr__.flush()
        sys.exit(1)
    raise
