from userservice.cli import main

raise SystemExit(main())
