#include "src/pki_server.h"

SWARM_PLUGIN(SWARM_PLUGIN_KIND_PKI, "pki-x509", "0.1.0", swarm::pki::PkiServer)
