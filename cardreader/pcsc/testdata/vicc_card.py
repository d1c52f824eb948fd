#!/usr/bin/python3
"""A virtual card for vpcd, at APDU level, for satd's PC/SC tests.

Usage: vicc_card.py conax|seca PORT

The card connects to vpcd (vsmartcard-vpcd, loaded by pcscd) on
127.0.0.1:PORT through python3-virtualsmartcard's VirtualICC and answers
with one personality. The personalities follow the reference facts of the
card-system issue (Conax-like and Seca-like command sets), not satd's code.
They hold no keys: the control words are the first 16 bytes of SHA-256 over
the ECM bytes the card receives, with the checksum bytes 3, 7, 11, 15 set to
the sum of the three bytes before them, so they are valid but mean nothing.

Pulling the card is killing the process (vpcd sees the socket close);
inserting it is starting a new one.
"""

import hashlib
import os
import socket
import sys
import types

# python3-virtualsmartcard installs outside Debian's module path, and its
# CryptoUtils falls back to the Python 2 module "sha" when PyCrypto is
# missing. Neither matters to an APDU-level card: point the path at the
# package and give it a stand-in "sha" module.
sys.path.insert(0, "/usr/lib/python3/site-packages/virtualsmartcard")
sys.modules.setdefault("sha", types.ModuleType("sha"))

from virtualsmartcard.VirtualSmartcard import SmartcardOS, VirtualICC  # noqa: E402

OK = b"\x90\x00"


def control_words(payload):
    """Even and odd CW from the ECM bytes, with valid checksums."""
    cw = bytearray(hashlib.sha256(payload).digest()[:16])
    for i in (3, 7, 11, 15):
        cw[i] = (cw[i - 3] + cw[i - 2] + cw[i - 1]) & 0xFF
    return bytes(cw)


class Conax(SmartcardOS):
    """Conax-like card: T=0, CAID 0B00, answers fetched with DD CA."""

    ATR = bytes([0x3B, 0x24, 0x00]) + b"0B00"  # historical bytes "0B00"
    CAM_ID = bytes.fromhex("01B00FFFFFFB00000904") + bytes([0x0B, 0x00]) + bytes.fromhex("E0302B")

    def __init__(self):
        self.pending = b""

    def getATR(self):
        return self.ATR

    def powerUp(self):
        self.pending = b""

    def powerDown(self):
        self.pending = b""

    def reset(self):
        self.pending = b""

    def answer(self, data):
        """Queue data for DD CA and announce it with 98 LL."""
        self.pending = data
        return bytes([0x98, len(data)])

    def execute(self, apdu):
        if len(apdu) < 5 or apdu[0] != 0xDD:
            return b"\x6E\x00"
        ins, body = apdu[1], apdu[5:5 + apdu[4]]
        if ins == 0x26 and apdu[2:] == bytes([0, 0, 3, 0x10, 0x01, 0x40]):
            # version 40, CAID 0B00, a currency/language field (nano 2F)
            return self.answer(bytes.fromhex("200140" "28020B00" "2F021122"))
        if ins == 0x82 and apdu[4] == 0x11 and body == bytes([0x11, 0x0F]) + self.CAM_ID:
            shared = bytes.fromhex("2307000000" "00AABBCC")
            unique = bytes.fromhex("2307000000" "01020304")
            inner = shared + unique
            return self.answer(bytes([0x22, len(inner)]) + inner)
        if ins == 0xC6 and apdu[2:] == bytes([0, 0, 3, 0x1C, 0x01, 0x00]):
            name = b"satd test pkg".ljust(15)
            rec = bytes([0x00, 0x01]) + bytes([0x01, len(name)]) + name + bytes.fromhex("3004" "2C812C9F")
            return self.answer(bytes([0x32, len(rec)]) + rec)
        if ins == 0x26 and apdu[2:] == bytes([0, 0, 3, 0x1C, 0x01, 0x01]):
            return OK  # no PPV events
        if ins == 0xA2 and len(body) >= 3 and body[0] == 0x14 and body[1] == len(body) - 2 and body[2] == 0:
            cw = control_words(bytes(body[3:]))
            data = (bytes([0x25, 0x0D, 0x00, 0x00, 0x00, 0x00, 0x00]) + cw[:8] +
                    bytes([0x25, 0x0D, 0x00, 0x00, 0x01, 0x00, 0x00]) + cw[8:] +
                    bytes([0x31, 0x02, 0x00, 0x00]))
            return self.answer(data)
        if ins == 0xCA and apdu[2:4] == b"\x00\x00":
            n = apdu[4] or 256
            out, self.pending = self.pending[:n], self.pending[n:]
            if not out:
                return b"\x69\x85"
            if self.pending:
                return out + bytes([0x98, min(len(self.pending), 255)])
            return out + OK
        return b"\x6D\x00"


class Seca(SmartcardOS):
    """Seca-like card (Seca 2): T=0, CAID 0100, CLA C1."""

    # TA1 11, TB1 00, TC1 01, TD1 40, TC2 96; historical bytes end with the
    # version byte (x7 = Seca 2) and 0E 6C B6 D6 at ATR bytes 9-13.
    ATR = bytes.fromhex("3BF71100014096" "707017" "0E6CB6D6")
    PROVIDERS = {0: (0x0000, b"SECA test"), 1: (0x0070, b"satd test")}

    def __init__(self):
        self.cw = bytes(16)

    def getATR(self):
        return self.ATR

    def powerUp(self):
        pass

    def powerDown(self):
        pass

    def reset(self):
        pass

    def execute(self, apdu):
        if len(apdu) < 5 or apdu[0] != 0xC1:
            return b"\x6E\x00"
        ins, p1, p2, p3 = apdu[1], apdu[2], apdu[3], apdu[4]
        if ins == 0x0E and apdu[2:] == bytes([0, 0, 8]):
            return bytes.fromhex("0000" "112233445566") + OK
        if ins == 0x16 and apdu[2:] == bytes([0, 0, 7]):
            return bytes.fromhex("0000" "0003" "000000") + OK  # bitmap in bytes 2-3
        if ins == 0x12 and p2 == 0 and p3 == 0x19 and len(apdu) == 5:
            if p1 not in self.PROVIDERS:
                return b"\x94\x04"
            ident, name = self.PROVIDERS[p1]
            # expiry 2030-12-31: year 1990+40 -> b22 = 40<<1 | month>>3
            rec = ident.to_bytes(2, "big") + name.ljust(16, b"\x00") + bytes(4) + bytes([80 | 1, (4 << 5) | 31]) + b"\x00"
            return rec + OK
        if ins == 0x3C and len(apdu) == 5 + p3:
            if p1 not in self.PROVIDERS:
                return b"\x93\x02"
            self.cw = control_words(bytes(apdu[5:]))
            return OK
        if ins == 0x3A and apdu[2:] == bytes([0, 0, 0x10]):
            return self.cw + OK
        return b"\x6D\x00"


class QuickAckSocket:
    """vpcd writes a message's length and body separately; with Nagle on its
    side and delayed ACKs on ours every APDU would wait ~40 ms for the ACK.
    Acknowledging at once keeps the round trip at what pcscd costs."""

    def __init__(self, sock):
        self.sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def recv(self, n):
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return self.sock.recv(n)

    def __getattr__(self, name):
        return getattr(self.sock, name)


def main():
    kind, port = sys.argv[1], int(sys.argv[2])
    icc = VirtualICC.__new__(VirtualICC)
    icc.os = {"conax": Conax, "seca": Seca}[kind]()
    icc.type, icc.host, icc.port = kind, "127.0.0.1", port
    icc.sock = QuickAckSocket(VirtualICC.connectToPort("127.0.0.1", port))
    icc.server_sock = None
    print("vicc %s connected to vpcd on port %d" % (kind, port), flush=True)
    try:
        icc.run()
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
