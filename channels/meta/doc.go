// Package meta holds what Parley's Meta channels (Messenger / Instagram and
// the WhatsApp Cloud API) share: the X-Hub-Signature-256 check, the
// hub.challenge subscription handshake and the Graph API call that sends a
// message.
//
//	if resp, ok := meta.Handshake(req, settings["verify_token"]); ok {
//		return &channels.Inbound{Response: resp}, nil
//	}
//	if !meta.ValidSignature(settings["app_secret"], req.Body, req.Header.Get(meta.SignatureHeader)) {
//		return nil, channels.Unauthorized("...")
//	}
//
// Everything here is safe for concurrent use.
package meta
