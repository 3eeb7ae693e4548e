// PM2: `pm2 start ecosystem.config.js`. See docs/operations.md.
const path = require("path");

module.exports = {
  apps: [
    {
      name: "slack-assistant",
      script: "main.py",
      // The project's own virtualenv (created by `make install`), never the system Python.
      interpreter: path.join(__dirname, ".venv", "bin", "python"),
      cwd: __dirname,
      autorestart: true,
      // Restart with growing delays (100 ms doubling up to 15 s) instead of a tight crash loop.
      exp_backoff_restart_delay: 100,
      max_restarts: 50,
      min_uptime: "10s",
      // SIGTERM first; SIGKILL only after the bot's SHUTDOWN_GRACE_SECONDS (10 s) plus margin.
      kill_timeout: 20000,
      out_file: path.join(__dirname, "logs", "out.log"),
      error_file: path.join(__dirname, "logs", "error.log"),
      merge_logs: true,
      time: true,
      env: {
        PYTHONUNBUFFERED: "1",
      },
    },
  ],
};
