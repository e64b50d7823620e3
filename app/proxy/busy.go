package proxy

import "mixmatch/app/httpclient"

// ErrBusy is the transport refusing a call over max_concurrent_requests; the proxy
// answers it with a 503.
var ErrBusy = httpclient.ErrBusy
