"""The engine: commands under the run lock, applying scripts, the plan, the history table and locks."""
