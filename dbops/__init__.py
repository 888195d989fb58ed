"""dbops: database migrations from source control."""
