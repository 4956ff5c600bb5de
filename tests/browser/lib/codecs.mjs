// Page init scripts that steer which codecs a page's transceivers offer.

/** Every video transceiver the page adds offers H264 (packetization-mode 1, 42e01f) only. */
export const H264_ONLY = `(() => {
  const add = RTCPeerConnection.prototype.addTransceiver;
  RTCPeerConnection.prototype.addTransceiver = function (what, init) {
    const transceiver = add.call(this, what, init);
    const kind = typeof what === 'string' ? what : what && what.kind;
    if (kind === 'video') {
      const codecs = RTCRtpReceiver.getCapabilities('video').codecs;
      const h264 = codecs.filter((c) => c.mimeType === 'video/H264'
        && /packetization-mode=1/.test(c.sdpFmtpLine || '')
        && /profile-level-id=42e01f/.test(c.sdpFmtpLine || ''));
      const rtx = codecs.filter((c) => c.mimeType === 'video/rtx');
      transceiver.setCodecPreferences([...h264, ...rtx]);
    }
    return transceiver;
  };
})();`;
