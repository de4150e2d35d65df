"""agentwatch: an observability-first runtime for Claude agents."""
