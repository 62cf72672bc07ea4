"""Publishing content: checking a content tree, publishing versions and rolling back."""
