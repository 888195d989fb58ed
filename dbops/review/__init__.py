"""`dbops review`: what a pull request needs before it merges — integrity against a base, lint, plan, a scratch build."""
