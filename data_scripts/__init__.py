"""Scripts that prepare every dataset of the book (download when online, or import a local copy)."""
