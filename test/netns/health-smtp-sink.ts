// A real SMTP server (npm smtp-server) for the health tests, started inside a lab namespace with
// `ip netns exec NS node dist/test/netns/health-smtp-sink.js ADDRESS PORT`: prints "ready" once
// listening, then one JSON line per message received ({ from, to, subject, data }). Plain SMTP, no AUTH,
// as keepalived speaks it. It exits when its stdin closes, so it never outlives the test.
import { SMTPServer } from 'smtp-server';

const [address = '127.0.0.1', portText = '2525'] = process.argv.slice(2);
const port = Number(portText);

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  logger: false,
  onData(stream, session, callback) {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const envelope = session.envelope;
      const from = envelope.mailFrom ? envelope.mailFrom.address : '';
      const data = Buffer.concat(chunks).toString('utf8');
      // Long headers arrive folded (RFC 5322 section 2.2.3): unfold before reading the subject.
      const headers = data.split('\r\n\r\n')[0]!.replace(/\r\n(?=[ \t])/g, '');
      const subject = /^Subject: (.*)$/m.exec(headers)?.[1] ?? '';
      process.stdout.write(`${JSON.stringify({ from, to: envelope.rcptTo.map((r) => r.address), subject, data })}\n`);
      callback();
    });
  },
});

server.listen(port, address, () => process.stdout.write('ready\n'));
process.stdin.resume();
process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.on('close', () => server.close(() => process.exit(0)));
