#!/usr/bin/env python3
"""Computes AK/SK signing vectors with Huawei's official Python SDK (huaweicloudsdkcore,
unmodified) and prints them as JSON: tests/cloud/data/huawei_signer_vectors.json is this script's
output, and tests/cloud/signer_vectors.rs checks the driver's signer and the emulator's
verifier against it.

    pip install huaweicloudsdkcore==3.1.219
    python3 tests/peer-clients/signer_vectors.py > tests/cloud/data/huawei_signer_vectors.json
"""
import json
from importlib.metadata import version
from urllib.parse import urlsplit

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

AK = "AKEXAMPLE0123456789"
SK = "skExample/Secret+Key0123456789abcdefABCD"
PROJECT = "0123456789abcdef0123456789abcdef"
DATE = "20260301T120000Z"

CASES = [
    ("a GET with a query to sort and escape", "GET",
     f"https://evs.cn-north-4.myhuaweicloud.com/v2/{PROJECT}/cloudvolumes/detail",
     [("name", "pvc data+1"), ("limit", "10"), ("marker", "a/b")], {}, None),
    ("a POST with a JSON body", "POST",
     f"https://evs.cn-north-4.myhuaweicloud.com/v2.1/{PROJECT}/cloudvolumes", [],
     {"Content-Type": "application/json"},
     '{"volume":{"availability_zone":"cn-north-4a","name":"pvc-1","size":10,"volume_type":"GPSSD"}}'),
    ("a DELETE on a non-default port with a security token", "DELETE",
     f"https://127.0.0.1:8443/v1/{PROJECT}/cloudservers/srv-1/detachvolume/vol-1", [],
     {"X-Security-Token": "temporary-token"}, None),
    ("a PUT whose path segment needs escaping", "PUT",
     f"https://evs.cn-north-4.myhuaweicloud.com/v2/{PROJECT}/cloudvolumes/disk%3A1", [],
     {"Content-Type": "application/json"}, '{"volume":{"name":"renamed ~ disk"}}'),
    ("a POST with an octet-stream body, signed as UNSIGNED-PAYLOAD", "POST",
     f"http://127.0.0.1:8780/v2/{PROJECT}/cloudvolumes/vol-1/tags/action", [],
     {"Content-Type": "application/octet-stream"}, '{"action":"create","tags":[{"key":"k","value":"v"}]}'),
]


def vector(title, method, url, query, extra_headers, body):
    parts = urlsplit(url)
    headers = {"X-Sdk-Date": DATE, "X-Project-Id": PROJECT}
    headers.update(extra_headers)
    request = SdkRequest(method=method, schema=parts.scheme, host=parts.netloc,
                         resource_path=parts.path, query_params=list(query),
                         header_params=headers, body=body)
    Signer(BasicCredentials(AK, SK, PROJECT)).sign(request)
    return {
        "title": title,
        "method": method,
        "url": request.url,
        "headers": {k.lower(): v for k, v in request.header_params.items() if k.lower() != "authorization"},
        "body": body or "",
        "authorization": request.header_params["Authorization"],
    }


print(json.dumps({
    "generator": "tests/peer-clients/signer_vectors.py",
    "sdk": f"huaweicloudsdkcore {version('huaweicloudsdkcore')}",
    "access_key": AK,
    "secret_key": SK,
    "date": DATE,
    "vectors": [vector(*case) for case in CASES],
}, indent=2))
