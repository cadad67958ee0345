# SPDX-License-Identifier: Apache-2.0
"""tests/services/s3_setup.py: make a fresh moto server check SigV4 and create the test bucket.

Usage: s3_setup.py ENDPOINT BUCKET REGION CREDENTIALS_FILE   (run with the venv's python by up)

moto accepts any signature unless authentication is switched on, which would let a broken
signer pass the tests. So: allow exactly three unauthenticated calls (reset-auth), spend them on
an IAM user with an allow-all policy and an access key, and from then on every request must be
signed with that key. The bucket is created with the key, and a request signed with a wrong
secret must be refused. The key is written to CREDENTIALS_FILE as shell assignments.
"""

import json
import os
import sys
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def main(endpoint, bucket, region, out):
    req = urllib.request.Request(
        endpoint + "/moto-api/reset-auth",
        data=b"3",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(req, timeout=10).read()

    anon = dict(endpoint_url=endpoint, region_name=region,
                aws_access_key_id="setup", aws_secret_access_key="setup")
    iam = boto3.client("iam", **anon)
    iam.create_user(UserName="evpipe")
    iam.put_user_policy(
        UserName="evpipe",
        PolicyName="evpipe-all",
        PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }),
    )
    key = iam.create_access_key(UserName="evpipe")["AccessKey"]

    cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"})

    def s3(secret):
        return boto3.client("s3", endpoint_url=endpoint, region_name=region,
                            aws_access_key_id=key["AccessKeyId"],
                            aws_secret_access_key=secret, config=cfg)

    s3(key["SecretAccessKey"]).create_bucket(Bucket=bucket)
    try:
        s3("not-the-secret").head_bucket(Bucket=bucket)
    except ClientError:
        pass
    else:
        sys.exit("s3_setup: a request with a wrong secret was accepted: SigV4 is not checked")

    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("access_key=%s\nsecret_key=%s\n" % (key["AccessKeyId"], key["SecretAccessKey"]))
    os.replace(tmp, out)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: s3_setup.py ENDPOINT BUCKET REGION CREDENTIALS_FILE")
    main(*sys.argv[1:])
