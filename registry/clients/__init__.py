"""What the ownCloud and Nextcloud desktop clients (and rclone's ownCloud mode) ask a server
before and while syncing: `status.php`, the OCS capabilities and user, and the classic WebDAV
roots of the caller's personal space."""
