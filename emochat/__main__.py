from emochat.cli import main

raise SystemExit(main())
