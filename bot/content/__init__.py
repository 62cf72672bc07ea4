"""Content: the content model read from the content files, keyword matching, the school index, SMS segments."""
