// Package eventmsg builds event messages the API server accepts: it drops
// events whose message is longer than 1024 characters, so a list of objects
// is cut short with "… and N more". It knows nothing about what is listed.
package eventmsg
