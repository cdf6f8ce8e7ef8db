#!/usr/bin/python3
"""Follows multipass-target's event stream (or multipass-hostd's) with nothing
but ZeroMQ and msgpack: Debian's python3-zmq and python3-msgpack.

The wire protocol is specified in docs/EVENTS.md; this file uses no code of
the project. Every event is printed once, in order: a gap (a dropped message,
a late join, a missed tail seen in a heartbeat) and a reconnect are filled by
asking the publisher's request endpoint for `events.replay`.

    follow_events.py --address tcp://10.1.2.3:7500 --server-key status.pub --key me.key --since 0
    follow_events.py --address ipc:///run/mps/status.sock --json
"""
import argparse
import json
import os
import sys
import time

import msgpack
import zmq

HEARTBEAT = "bus.heartbeat"
HEARTBEAT_SILENCE_S = 3.5  # heartbeats come every second: this long without one means reconnect


def events_endpoint(address):
    """The publisher's endpoint: tcp port + 1, or the ipc path with '.events'."""
    if address.startswith("tcp://"):
        host, port = address.rsplit(":", 1)
        return "%s:%d" % (host, int(port) + 1)
    return address + ".events"


def read_key(path):
    with open(path, "rb") as f:
        return f.read().strip()


class Follower:
    def __init__(self, args):
        self.args = args
        self.ctx = zmq.Context.instance()
        self.stream = None
        self.last = args.since  # None: live only, from the next event
        self.next_id = 1
        self.delivered = 0
        self.sub = self.dealer = None
        self.curve = None
        if args.key:
            secret = read_key(args.key)
            self.curve = (read_key(args.server_key), zmq.curve_public(secret), secret)

    # -- sockets -----------------------------------------------------------
    def secure(self, sock):
        if self.curve:
            sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = self.curve

    def connect(self):
        self.sub = self.ctx.socket(zmq.SUB)
        self.secure(self.sub)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")  # every topic: seq numbers span them all
        self.sub.connect(events_endpoint(self.args.address))
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.secure(self.dealer)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.connect(self.args.address)
        self.last_heard = time.monotonic()

    def close(self):
        for s in (self.sub, self.dealer):
            if s is not None:
                s.close(linger=0)
        self.sub = self.dealer = None

    def reconnect(self, why):
        print("follow_events: reconnecting (%s); replaying after #%s" % (why, self.last),
              file=sys.stderr, flush=True)
        self.close()
        time.sleep(self.args.reconnect_pause)
        self.connect()
        if self.last is not None:
            self.catch_up()

    # -- replay ------------------------------------------------------------
    def replay(self, since):
        """One events.replay request: the reply payload, or None without an answer."""
        request = {"v": 1, "t": "events.replay", "id": self.next_id, "from": "follow_events.py",
                   "dl": int(time.time() * 1000) + 3000, "p": {"since": since}}
        self.next_id += 1
        self.dealer.send(msgpack.packb(request, use_bin_type=True))
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if not self.dealer.poll(100):
                continue
            reply = msgpack.unpackb(self.dealer.recv(), raw=False)
            if reply.get("id") != request["id"]:
                continue  # the late answer of an earlier request
            if reply["t"] == "bus.error":
                raise RuntimeError("events.replay refused: %s: %s"
                                   % (reply["p"].get("code"), reply["p"].get("message")))
            return reply["p"]
        return None

    def catch_up(self, upto=0):
        """Delivers what the log holds after self.last (up to `upto`, 0 = all)."""
        while True:
            p = self.replay((self.last or 0) + 1)
            if p is None:
                print("follow_events: no answer to events.replay", file=sys.stderr, flush=True)
                return False
            if self.stream is not None and p["stream"] != self.stream:
                self.stream, self.last = p["stream"], 0  # publisher restarted with a new log
                continue
            self.stream = p["stream"]
            if p["first"] > (self.last or 0) + 1:
                print("follow_events: events #%d..#%d are no longer retained"
                      % ((self.last or 0) + 1, p["first"] - 1), file=sys.stderr, flush=True)
            if not p["events"]:
                return True
            for frame in p["events"]:
                e = msgpack.unpackb(frame, raw=False)
                if e["seq"] > (self.last or 0):
                    self.deliver(e)
                    if upto and e["seq"] >= upto:
                        return True

    # -- delivery ----------------------------------------------------------
    def deliver(self, e):
        self.last = e["seq"]
        self.delivered += 1
        if self.args.json:
            print(json.dumps({"seq": e["seq"], "type": e["t"], "stream": e.get("stream"),
                              "ts": e.get("ts"), "payload": e["p"]}, sort_keys=True), flush=True)
        else:
            p = dict(e["p"])
            pool = p.pop("pool", "")
            fields = " ".join("%s=%s" % (k, json.dumps(v)) for k, v in sorted(p.items()))
            print("#%d %s %s %s" % (e["seq"], pool, e["t"], fields), flush=True)
        if self.args.exit_at_seq and e["seq"] >= self.args.exit_at_seq:
            raise SystemExit(0)
        if self.args.reconnect_after and self.delivered == self.args.reconnect_after:
            self.reconnect("--reconnect-after %d" % self.args.reconnect_after)

    def on_message(self, topic, body):
        e = msgpack.unpackb(body, raw=False)
        if self.stream is not None and e.get("stream") != self.stream:
            self.stream, self.last = e.get("stream"), 0  # publisher restarted: new numbering
            self.catch_up()
            return
        self.stream = e.get("stream")
        if topic == HEARTBEAT:
            last = e["p"]["last"]
            if self.last is None:
                self.last = last  # live only: start after what already happened
            elif last > self.last:
                self.catch_up(last)  # we missed the tail
            return
        if self.last is None:
            self.deliver(e)
        elif e["seq"] <= self.last:
            return  # already delivered by a replay
        elif e["seq"] == self.last + 1:
            self.deliver(e)
        else:
            self.catch_up(e["seq"])  # a gap: replay up to this one

    def run(self):
        self.connect()
        if self.last is not None:
            self.catch_up()
        end = time.monotonic() + self.args.timeout if self.args.timeout else None
        while end is None or time.monotonic() < end:
            if self.sub.poll(100):
                topic, body = self.sub.recv_multipart()
                self.last_heard = time.monotonic()
                self.on_message(topic.decode(), body)
            elif time.monotonic() - self.last_heard > HEARTBEAT_SILENCE_S:
                self.reconnect("no heartbeat for %.1f s" % HEARTBEAT_SILENCE_S)
        print("follow_events: --timeout reached at #%s" % self.last, file=sys.stderr)
        return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--address", required=True,
                    help="the publisher's request endpoint (the plugin's status_address)")
    ap.add_argument("--server-key", help="the server's public key file (z85), for tcp")
    ap.add_argument("--key", help="our secret key file (z85, as mpscale keygen writes it)")
    ap.add_argument("--since", type=int, default=None,
                    help="first print the retained events after this number (0: all)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--exit-at-seq", type=int, default=0, help="exit 0 once this event is printed")
    ap.add_argument("--timeout", type=float, default=0, help="exit 1 after this many seconds")
    ap.add_argument("--reconnect-after", type=int, default=0,
                    help="(testing) drop the connection after this many events, then reconnect")
    ap.add_argument("--reconnect-pause", type=float, default=1.0,
                    help="seconds between closing and reopening the sockets")
    args = ap.parse_args()
    if bool(args.key) != bool(args.server_key):
        ap.error("--key and --server-key go together")
    try:
        return Follower(args).run()
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
