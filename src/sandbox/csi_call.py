#!/usr/bin/env python3
"""Calls one CSI method on the sandbox's socket and prints the answer as JSON.

    python3 csi_call.py unix:///path/csi.sock Identity GetPluginInfo
    python3 csi_call.py unix:///path/csi.sock Controller CreateVolume '{"name": "pvc-1",
        "capacityRange": {"requiredBytes": 1073741824},
        "volumeCapabilities": [{"mount": {}, "accessMode": {"mode": "SINGLE_NODE_WRITER"}}]}'

Needs `pip install grpcio grpcio-tools`. csi.proto is read from this script's directory (the
sandbox writes both there). gRPC's Python, Java and Swift clients send the socket path,
percent-encoded, as the HTTP/2 :authority of a unix socket call; the server's HTTP/2 stack refuses
that (RST_STREAM PROTOCOL_ERROR), so the channel sets `grpc.default_authority` to `localhost`.
"""
import importlib
import json
import os
import sys
import tempfile

import grpc
from google.protobuf import json_format
from grpc_tools import protoc


def stubs(proto_dir):
    out = tempfile.mkdtemp(prefix="csi-call-")
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    code = protoc.main(["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}",
                        f"--grpc_python_out={out}", os.path.join(proto_dir, "csi.proto")])
    if code != 0:
        sys.exit(f"protoc failed ({code})")
    sys.path.insert(0, out)
    return importlib.import_module("csi_pb2"), importlib.import_module("csi_pb2_grpc")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    target, service, method = sys.argv[1], sys.argv[2], sys.argv[3]
    body = sys.argv[4] if len(sys.argv) > 4 else "{}"
    if target.startswith("unix://"):
        target = "unix:" + target[len("unix://"):]
    elif target.startswith("tcp://"):
        target = target[len("tcp://"):]
    pb, rpc = stubs(os.path.dirname(os.path.abspath(__file__)))
    channel = grpc.insecure_channel(target, options=[("grpc.default_authority", "localhost")])
    stub = getattr(rpc, f"{service}Stub")(channel)
    call = getattr(stub, method)
    # Every CSI method takes a message named after it.
    request = json_format.Parse(body, getattr(pb, f"{method}Request")())
    try:
        answer = call(request, timeout=60)
    except grpc.RpcError as error:
        sys.exit(f"{error.code().name}: {error.details()}")
    print(json.dumps(json_format.MessageToDict(answer), indent=2))


if __name__ == "__main__":
    main()
