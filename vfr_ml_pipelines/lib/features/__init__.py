"""Features and labels."""
