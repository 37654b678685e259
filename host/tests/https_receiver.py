"""An https receiver for the outbound tests: answers every POST with 200
`ok`, with the certificate and key given, on a free loopback port (printed
first). With `--keep-alive` it speaks HTTP/1.1 on a thread per connection,
keeps each connection until its client closes it, and answers with the
number of the connection the request came on (`connection N`, and
`resumed` after it where the client resumed an earlier TLS session)."""

import http.server
import itertools
import ssl
import sys

keep_alive = "--keep-alive" in sys.argv[3:]
connections = itertools.count(1)


class Receiver(http.server.BaseHTTPRequestHandler):
    if keep_alive:
        protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.number = next(connections)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        resumed = " resumed" if self.connection.session_reused else ""
        body = f"connection {self.number}{resumed}".encode() if keep_alive else b"ok"
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server_class = http.server.ThreadingHTTPServer if keep_alive else http.server.HTTPServer
server = server_class(("127.0.0.1", 0), Receiver)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
