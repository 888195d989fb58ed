"""Scripts: where they come from (a folder, git, CodeCommit), how they are named, parsed and split."""
