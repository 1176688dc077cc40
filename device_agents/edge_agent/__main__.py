"""`python -m device_agents.edge_agent ...` (in the repo) runs the same CLI as the zipapp."""
import sys

from .cli import main

sys.exit(main())
