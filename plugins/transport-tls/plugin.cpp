#include "src/transport.h"

SWARM_PLUGIN(SWARM_PLUGIN_KIND_TRANSPORT, "transport-tls", "0.1.0", swarm::tls::TlsTransport)
