"""Password hashing, signed session tokens and CSRF tokens."""
