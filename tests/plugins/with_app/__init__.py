"""A plugin that is a Django app with pages, an API and a template (URL mounting tests)."""
