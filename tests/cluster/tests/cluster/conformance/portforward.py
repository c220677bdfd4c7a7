"""Port-forwarding through the ksync test cluster with the official Kubernetes Python client.

usage: portforward.py KUBECONFIG NAMESPACE POD

The pod serves an echo server on 7000 and a web server on 8080 (see echo_workload in
support.rs). Prints one JSON object with what each check saw; python.rs asserts on it.
"""

import json
import sys

from kubernetes import client, config
from kubernetes.stream import portforward, ws_client

TIMEOUT = 30


def recv_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def recv_until_closed(sock):
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def protocol(websocket):
    """The subprotocol the server chose, from the handshake response."""
    headers = websocket.getheaders() or {}
    return websocket.subprotocol or headers.get("sec-websocket-protocol")


def echo(pf, port):
    sock = pf.socket(port)
    sock.settimeout(TIMEOUT)
    payload = b"ping from python " * 4096  # 68 KiB: many WebSocket frames each way
    sock.sendall(payload)
    echoed = recv_exactly(sock, len(payload))
    error = pf.error(port)
    pf.close()
    return echoed == payload, error


def main():
    kubeconfig, namespace, pod = sys.argv[1:4]
    config.load_kube_config(config_file=kubeconfig)
    api = client.CoreV1Api()
    out = {}

    # The client's own choice of protocol (it offers v5 and v4).
    pf = portforward(api.connect_get_namespaced_pod_portforward, pod, namespace, ports="7000")
    out["protocol"] = protocol(pf.websocket)
    out["echo"], out["echo_error"] = echo(pf, 7000)

    # v4 only, through the client's own WebSocket and PortForward classes.
    configuration = api.api_client.configuration
    url = ws_client.get_websocket_url(
        f"{configuration.host}/api/v1/namespaces/{namespace}/pods/{pod}/portforward?ports=7000"
    )
    websocket = ws_client.create_websocket(
        configuration, url, {"sec-websocket-protocol": "v4.channel.k8s.io"}
    )
    pf = ws_client.PortForward(websocket, [7000])
    out["v4_protocol"] = protocol(websocket)
    out["v4_echo"], out["v4_echo_error"] = echo(pf, 7000)

    # One port: when the web server closes its end, the session ends and the socket reads EOF.
    pf = portforward(api.connect_get_namespaced_pod_portforward, pod, namespace, ports="8080")
    sock = pf.socket(8080)
    sock.settimeout(TIMEOUT)
    sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    out["http"] = recv_until_closed(sock).decode()

    # Nothing listens on port 9: the error channel says so.
    pf = portforward(api.connect_get_namespaced_pod_portforward, pod, namespace, ports="9")
    sock = pf.socket(9)
    sock.settimeout(TIMEOUT)
    out["closed_port_data"] = recv_until_closed(sock).decode()
    out["closed_port_error"] = pf.error(9)

    print(json.dumps(out))


if __name__ == "__main__":
    main()
