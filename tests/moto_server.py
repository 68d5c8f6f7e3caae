"""moto server handling one request at a time.

moto's own server is threaded and its DynamoDB backend takes no lock, so two concurrent
conditional writes to one item can both succeed. Real DynamoDB makes each conditional write
atomic, and the idempotency tests depend on exactly that, so requests are serialized here.
Same arguments as `moto_server`.
"""

import sys
import threading

import moto.server as server


class OneRequestAtATime(server.DomainDispatcherApplication):
    _lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            return list(super().__call__(environ, start_response))


server.DomainDispatcherApplication = OneRequestAtATime

if __name__ == "__main__":
    server.main(sys.argv[1:])
