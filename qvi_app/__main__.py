from qvi_app.cli import main

raise SystemExit(main())
