"""A private Postfix for the test run (the Debian package's), never the machine's own instance.

Its config folder, queue, data and log live in a fresh temp dir; it listens on a free loopback
port and relays everything it accepts to one SMTP server of the test's (an ``smtp:`` transport),
so a test sees what Postfix passed on. ``postfix -c DIR check`` builds the queue folders, and
``master -d`` runs in the foreground as our child: the machine's own configuration is never
touched (``postfix -c DIR start`` would want DIR listed in its ``alternate_config_directories``).
"""

from __future__ import annotations

import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
from pathlib import Path

from notifier.embedded import free_port
from tests.support.harness.processes import start_server, stop_and_remove
from tests.support.harness.wait import wait_for
from tests.support.peers import system

MASTER = Path("/usr/lib/postfix/sbin/master")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

NOT_INSTALLED = (
    f"Postfix is not installed ({MASTER} is missing): install it with "
    '`apt-get install postfix`, or deselect these tests with `-m "not postfix"`'
)


class PostfixServer:
    """``master -d`` of a Postfix instance of our own, relaying to ``127.0.0.1:relay_port``."""

    def __init__(self, relay_port: int) -> None:
        self.port = free_port()
        self.relay_port = relay_port
        self.dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        # Where the pipe's curl keeps a copy of what it was given (see pipe()).
        self.piped: Path | None = None

    def start(self) -> None:
        """Write the instance's config, build its queue and start it; wait until it listens."""
        system.require("postfix", "Postfix")
        if not MASTER.exists():
            raise AssertionError(NOT_INSTALLED)
        self.dir = Path(tempfile.mkdtemp(prefix="notifier-postfix-"))
        self.dir.chmod(0o755)  # mkdtemp's 0700 would keep the postfix user out of data/
        etc = self.dir / "etc"
        for sub in ("etc", "spool", "data"):
            (self.dir / sub).mkdir()
        shutil.chown(self.dir / "data", user="postfix")  # master.lock is written as postfix
        (etc / "main.cf").write_text(self._main_cf())
        (etc / "master.cf").write_text(self._master_cf())
        subprocess.run(["postfix", "-c", str(etc), "check"], check=True, timeout=60)
        try:
            self.process = start_server(
                [str(MASTER), "-c", str(etc), "-d"],
                output=self.dir / "master.out",
                ready=self._accepts,
                what=f"Postfix on port {self.port}",
                timeout=START_TIMEOUT,
                logs=[self.dir / "maillog", self.dir / "master.out"],
            )
        except AssertionError:
            self.stop()
            raise

    def _main_cf(self) -> str:
        assert self.dir is not None
        relay = f"smtp:[127.0.0.1]:{self.relay_port}"
        return "\n".join(
            [
                "compatibility_level = 3.6",
                f"queue_directory = {self.dir / 'spool'}",
                f"data_directory = {self.dir / 'data'}",
                "inet_interfaces = 127.0.0.1",
                "inet_protocols = ipv4",
                "myhostname = postfix.notifier.test",
                "mydestination =",
                "mynetworks = 127.0.0.0/8",
                # As a real MX: a client outside mynetworks may relay only to relay_domains.
                "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
                # A test stands for another server on the internet through XCLIENT
                # (see from_outside()): our loopback client would be in mynetworks.
                "smtpd_authorized_xclient_hosts = 127.0.0.1",
                # Everything accepted goes to the test's server, never anywhere else.
                f"default_transport = {relay}",
                f"relay_transport = {relay}",
                f"local_transport = {relay}",
                f"maillog_file = {self.dir / 'maillog'}",
                f"maillog_file_prefixes = {self.dir.parent}",
                # Refuse bare LF as relays hardened against SMTP smuggling do. Debian 12's
                # Postfix (3.7) defaults to "no", which accepts it; 3.9+ "normalize" also
                # accepts bare-LF lines. The exclusions default to $mynetworks, 127.0.0.0/8
                # here: left as they are, our loopback client would be exempt from the check.
                "smtpd_forbid_bare_newline = reject",
                "smtpd_forbid_bare_newline_exclusions =",
                # A deferred mail is tried again within seconds, and its sender warned of the
                # delay after one (a soft bounce a test can wait for); production waits hours.
                "queue_run_delay = 1s",
                "minimal_backoff_time = 1s",
                "maximal_backoff_time = 2s",
                # A transport Postfix takes for malfunctioning (a pipe that did not finish on a
                # loaded machine) is tried again after a second, not its default minute.
                "transport_retry_time = 1s",
                "delay_warning_time = 1s",
                "",
            ]
        )

    def _master_cf(self) -> str:
        """The machine's master.cf, with smtpd on our port and no service chrooted."""
        default = Path(
            subprocess.run(
                ["postconf", "-h", "config_directory"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        lines = []
        for line in (default / "master.cf").read_text().splitlines():
            fields = line.split()
            if line[:1].isalnum() and len(fields) >= 8:
                if fields[0] == "smtp" and fields[1] == "inet":
                    fields[0] = f"127.0.0.1:{self.port}"
                # A chrooted service would need copies of /etc files in the queue folder.
                fields[4] = "n"
                line = " ".join(fields)
            lines.append(line)
        return "\n".join(lines) + "\n"

    def pipe(self, main_cf: str, master_cf: str) -> None:
        """Add an operator's ``main.cf`` and ``master.cf`` lines (a pipe to curl, say) and
        reload; returns once master has read them.

        ``/usr/bin/curl`` in them runs through a wrapper that keeps a copy of each message it
        is given in ``self.piped``, then hands it to curl with the same arguments.
        """
        assert self.dir is not None and self.process is not None
        etc = self.dir / "etc"
        copies = self.piped = self.dir / "piped"
        copies.mkdir()
        copies.chmod(0o1777)  # a pipe runs as its user=, nobody
        wrapper = self.dir / "curl"
        wrapper.write_text(f'#!/bin/sh\ntee "{copies}/$$.eml" | exec /usr/bin/curl "$@"\n')
        wrapper.chmod(0o755)
        with (etc / "main.cf").open("a") as main:
            main.write(main_cf.strip() + "\n")
        with (etc / "master.cf").open("a") as master:
            master.write(master_cf.replace("/usr/bin/curl", str(wrapper)).strip() + "\n")
        subprocess.run(["postfix", "-c", str(etc), "check"], check=True, timeout=60)
        log = self.dir / "maillog"
        reloads = log.read_text().count(" reload -- ")
        self.process.send_signal(signal.SIGHUP)  # master -d reads its configuration again
        wait_for(
            lambda: log.read_text().count(" reload -- ") > reloads,
            what="Postfix's reload",
            timeout=START_TIMEOUT,
        )

    def from_outside(self, sender: str, recipients: list[str], raw: bytes) -> None:
        """Send a message over SMTP as a server outside mynetworks would (``192.0.2.25``,
        through XCLIENT); raises ``smtplib.SMTPRecipientsRefused`` when Postfix refuses."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
            client.ehlo("test.invalid")
            code, reply = client.docmd("XCLIENT", "ADDR=192.0.2.25 NAME=mx.elsewhere.test")
            assert code == 220, reply  # Postfix greets again, as the client it now stands for
            client.ehlo("mx.elsewhere.test")
            client.sendmail(sender, recipients, raw)

    def logged(self, *words: str) -> list[str]:
        """The lines of the instance's log that hold every one of ``words``."""
        assert self.dir is not None
        text = (self.dir / "maillog").read_text(errors="replace")
        return [line for line in text.splitlines() if all(w in line for w in words)]

    def _accepts(self, master: subprocess.Popen[bytes]) -> bool:
        """Whether Postfix greets on its port; fails the wait if master died."""
        if master.poll() is not None:
            raise AssertionError(f"postfix master exited with {master.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
                greeting = conn.recv(200)
        except OSError:
            return False
        return re.match(rb"220 postfix\.notifier\.test ", greeting) is not None

    def stop(self) -> None:
        """Stop master and its children (the whole process group) and remove the folder."""
        process, directory = self.process, self.dir
        self.process = self.dir = None
        stop_and_remove(process, directory, STOP_TIMEOUT)
