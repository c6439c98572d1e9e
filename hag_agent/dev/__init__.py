"""Developer tools: test models and fixtures that need heavy optional packages."""
