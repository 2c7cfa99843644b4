/* A shared library that is not a plugin: it exports a function, but not swarm_plugin_entry. */
int swarm_plugin_entry_misspelled(void) { return 0; }
