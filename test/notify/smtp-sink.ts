// An SMTP server on 127.0.0.1 (a free port) that keeps each received mail's Subject header, for
// tests of the alert mails (the VRRP glue's smtp_alert, a reload that moves smtp_server).

export interface SmtpSink {
  port: number;
  /** Subjects in arrival order (folded header lines unfolded). */
  subjects: string[];
  close: () => Promise<void>;
}

export async function smtpSink(): Promise<SmtpSink> {
  const { SMTPServer } = await import('smtp-server');
  const subjects: string[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const headers = Buffer.concat(chunks).toString('utf8').split('\r\n\r\n')[0]!.replace(/\r\n(?=[ \t])/g, '');
        subjects.push(/^Subject: (.*)$/m.exec(headers)?.[1] ?? '');
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as { port: number }).port;
  return { port, subjects, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
