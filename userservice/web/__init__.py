"""Static files and templates of the hosted pages."""
