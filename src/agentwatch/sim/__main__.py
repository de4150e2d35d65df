"""``python -m agentwatch.sim``: serve the simulator until Ctrl-C."""

from agentwatch.sim.serve import main

raise SystemExit(main())
