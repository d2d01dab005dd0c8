"""
The worker: an AMP client that asks its driver for tasks and runs them.

Its parts, from the outside in:

  - L{options}: C{twistd txmr-worker}'s command line and wiring;
  - L{address}: a driver address (C{HOST:PORT}, C{http://HOST:PORT}, or an
    endpoint string) as a Twisted client endpoint string;
  - L{service}: L{WorkerService}, the daemon: it keeps the connection (a
    C{ClientService} on the endpoint and clock it is given, reconnecting
    with back-off), gives up on a driver out of reach, and exits with a
    code; C{makeService} builds one for twistd;
  - L{connection}: L{WorkerProtocol}, the thin AMP adapter that answers the
    driver's Ping, Cancel and JobOver by calling into the service;
  - L{session}: L{Session}, one connection's life: Hello, then the loop of
    asking for tasks, running them in batches and reporting them;
  - L{execution}: L{Executor}, which runs a batch of attempts in one thread
    call, each cancellable alone, and returns typed outcomes;
  - L{shuffle} and L{serve}: for a driver without a shared intermediate
    directory, the work directory where maps write, the HTTP server of
    their committed output, and the reduces' fetches of it.

The service owns one executor and, while connected, one session; the
protocol calls the service, the session calls the protocol and the
executor.  Nothing is re-exported here: import the part you need.
"""
