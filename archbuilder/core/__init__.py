"""The ground every other package stands on: errors and their messages, safe file writing,
escaping, optional extras, file formats, the version. Imports nothing of archbuilder's."""
